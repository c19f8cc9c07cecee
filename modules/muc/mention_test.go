package muc

import "testing"

func TestMUCMentionWord(t *testing.T) {
	for _, tc := range []struct {
		s, word string
		want    bool
	}{
		{"hello, bobby!", "bobby", true},
		{"bobby", "bobby", true},
		{"bobbyx", "bobby", false},
		{"xbobby bobby_", "bobby", false},
		{"xbobby, then bobby.", "bobby", true},
		{"ça va, élodie?", "élodie", true},
		{"nélodie", "élodie", false},
		{"dear third witch", "third witch", true},
		{"", "bobby", false},
		{"anything", "", false},
	} {
		if got := hasWord(tc.s, tc.word); got != tc.want {
			t.Errorf("hasWord(%q, %q) = %v, want %v", tc.s, tc.word, got, tc.want)
		}
	}
}
