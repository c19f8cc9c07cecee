// Command prosodyaccounts writes Prosody internal_hashed account files user1..userN
// (password "password", SCRAM-SHA-1, 4096 iterations) for the bench, much faster than
// one prosodyctl call per account.
package main

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
)

func main() {
	n, _ := strconv.Atoi(os.Args[2])
	salt := "vireobenchsalt01"
	sp, _ := pbkdf2.Key(sha1.New, "password", []byte(salt), 4096, 20)
	mac := func(k []byte, s string) []byte { m := hmac.New(sha1.New, k); m.Write([]byte(s)); return m.Sum(nil) }
	ck := mac(sp, "Client Key")
	h := sha1.Sum(ck)
	sk := mac(sp, "Server Key")
	body := fmt.Sprintf("return {\n\t[\"iteration_count\"] = 4096;\n\t[\"salt\"] = %q;\n\t[\"stored_key\"] = %q;\n\t[\"server_key\"] = %q;\n};\n", salt, hex.EncodeToString(h[:]), hex.EncodeToString(sk))
	for i := 1; i <= n; i++ {
		os.WriteFile(fmt.Sprintf("%s/user%d.dat", os.Args[1], i), []byte(body), 0o644)
	}
}
