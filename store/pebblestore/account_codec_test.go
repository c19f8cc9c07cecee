package pebblestore

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/vireo-im/vireo/store"
)

func sampleAccount() store.Account {
	return store.Account{
		User: "alice@example.org",
		Creds: [3]store.Credentials{
			{Salt: []byte("salt1"), Iter: 4096, StoredKey: []byte("stored-1"), ServerKey: []byte("server-1")},
			{Salt: []byte("salt2"), Iter: 10000, StoredKey: []byte("stored-2"), ServerKey: []byte("server-2")},
		},
		Created: time.Date(2026, 12, 2, 15, 0, 0, 123, time.UTC),
	}
}

func TestAccountCodec(t *testing.T) {
	for _, a := range []store.Account{sampleAccount(), {User: "bob@example.org"}, {User: "carol@example.org", Disabled: true},
		{User: "dan@example.org", External: true}, {User: "eve@example.org", External: true, Disabled: true}, {User: "k3x9@guest.example.org", Anonymous: true}} {
		got, err := decodeAccount(encodeAccount(a))
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Fatalf("round trip:\n got %+v, %v\nwant %+v", got, err, a)
		}
	}
	// A record an earlier version wrote as JSON still reads.
	a := sampleAccount()
	old, _ := json.Marshal(a)
	got, err := decodeAccount(old)
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("JSON record: %+v, %v", got, err)
	}
	// Truncated or foreign records are refused, never misread.
	enc := encodeAccount(a)
	for _, bad := range [][]byte{nil, {0x02}, enc[:len(enc)-1], enc[:5]} {
		if _, err := decodeAccount(bad); err == nil {
			t.Fatalf("%x accepted", bad)
		}
	}
}

func BenchmarkAccountDecode(b *testing.B) {
	bin := encodeAccount(sampleAccount())
	js, _ := json.Marshal(sampleAccount())
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			decodeAccount(bin)
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			decodeAccount(js)
		}
	})
}

func FuzzAccountDecode(f *testing.F) {
	f.Add(encodeAccount(sampleAccount()))
	f.Add([]byte{accountV1, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		a, err := decodeAccount(v)
		if err != nil || len(v) == 0 || v[0] != accountV1 {
			return
		}
		// What decodes re-encodes to a record that decodes to the same account.
		again, err := decodeAccount(encodeAccount(a))
		if err != nil || !reflect.DeepEqual(again, a) {
			t.Fatalf("%+v -> %+v, %v", a, again, err)
		}
	})
}
