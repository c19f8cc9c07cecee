package version

import "github.com/vireo-im/vireo/xmlstream/stanza"

func stanzaServiceUnavailable() *stanza.Error { return stanza.New(stanza.ServiceUnavailable) }
