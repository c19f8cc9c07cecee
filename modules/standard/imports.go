// Package standard links every built-in module into the binary: importing it registers
// them all. It holds no code of its own.
package standard

import (
	_ "github.com/vireo-im/vireo/modules/offline"
	_ "github.com/vireo-im/vireo/modules/presence"
	_ "github.com/vireo-im/vireo/modules/roster"
)
