// Package standard links every built-in module into the binary: importing it registers
// them all. It holds no code of its own.
package standard

import (
	_ "github.com/vireo-im/vireo/modules/adhoc"
	_ "github.com/vireo-im/vireo/modules/antispam"
	_ "github.com/vireo-im/vireo/modules/blocking"
	_ "github.com/vireo-im/vireo/modules/carbons"
	_ "github.com/vireo-im/vireo/modules/contact"
	_ "github.com/vireo-im/vireo/modules/csi"
	_ "github.com/vireo-im/vireo/modules/disco"
	_ "github.com/vireo-im/vireo/modules/extdisco"
	_ "github.com/vireo-im/vireo/modules/hints"
	_ "github.com/vireo-im/vireo/modules/last"
	_ "github.com/vireo-im/vireo/modules/mam"
	_ "github.com/vireo-im/vireo/modules/muc"
	_ "github.com/vireo-im/vireo/modules/offline"
	_ "github.com/vireo-im/vireo/modules/pep"
	_ "github.com/vireo-im/vireo/modules/ping"
	_ "github.com/vireo-im/vireo/modules/presence"
	_ "github.com/vireo-im/vireo/modules/private"
	_ "github.com/vireo-im/vireo/modules/proxy65"
	_ "github.com/vireo-im/vireo/modules/pubsub"
	_ "github.com/vireo-im/vireo/modules/push"
	_ "github.com/vireo-im/vireo/modules/register"
	_ "github.com/vireo-im/vireo/modules/roster"
	_ "github.com/vireo-im/vireo/modules/sid"
	_ "github.com/vireo-im/vireo/modules/upload"
	_ "github.com/vireo-im/vireo/modules/vcard"
	_ "github.com/vireo-im/vireo/modules/version"
	_ "github.com/vireo-im/vireo/modules/welcome"
	_ "github.com/vireo-im/vireo/modules/xtime"
)
