package pebblestore

// Key layout: the only table of key prefixes. One byte per keyspace; within a keyspace,
// per-user keys start with the bare JID and a 0x00, so one user's rows are one range and
// "everything of user X" is a prefix delete.
const (
	pAccount   byte = 'a' // a user                       -> account (account_codec.go)
	pRoster    byte = 'r' // r user 0 contact             -> roster item (json)
	pRosterVer byte = 'v' // v user                       -> uint64 version
	pOffline   byte = 'o' // o user 0 id(8, big endian)   -> stamp(8) raw
	pOffMeta   byte = 'q' // q user                       -> next id(8) count(8) bytes(8)
	pTableName byte = 'n' // n name                       -> table id (2)
	pTable     byte = 't' // t id(2) key                  -> value
	pMeta      byte = 'm' // m name                       -> store metadata (schema version)
	pPartial   byte = 'k' // k user                       -> "" (the account lacks some hash's SCRAM keys)
	pGuest     byte = 'g' // g user                       -> "" (a guest's account: Account.Anonymous)
	pRemoved   byte = 'd' // d user                       -> removal record (removals.go)
)

func key(prefix byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, prefix)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

// userRange returns [start, end) covering prefix user 0 ...
func userRange(prefix byte, user string) (start, end []byte) {
	start = append(key(prefix, user), 0)
	end = append(key(prefix, user), 1)
	return
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
