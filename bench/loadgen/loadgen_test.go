package loadgen

import (
	"crypto/sha1"
	"testing"
)

// TestScramFinalRFC5802 checks the client side against the example exchange in RFC 5802 §5.
func TestScramFinalRFC5802(t *testing.T) {
	final, sig, err := ScramFinal(sha1.New, "pencil", "fyko+d2lbbFgONRv9qkxdawL",
		"n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
	if err != nil {
		t.Fatal(err)
	}
	if want := "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="; final != want {
		t.Fatalf("final = %s, want %s", final, want)
	}
	if sig != "rmF9pqV8S7suAoZWja4dJRkFsKQ=" {
		t.Fatalf("server signature = %s", sig)
	}
	if _, _, err := ScramFinal(sha1.New, "pencil", "abc", "n=user,r=abc", "r=zzz,s=QSXCR+Q6sek8bf92,i=4096"); err == nil {
		t.Fatal("foreign nonce accepted")
	}
}
