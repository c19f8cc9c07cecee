package proxy65

import (
	"errors"
	"fmt"
	"io"
)

// SOCKS5 (RFC 1928) as XEP-0065 uses it.
const (
	socksVersion   = 0x05
	methodNoAuth   = 0x00
	methodNone     = 0xff // no acceptable method
	cmdConnect     = 0x01
	atypDomainName = 0x03

	replySucceeded  = 0x00
	replyFailure    = 0x01 // general SOCKS server failure
	replyNotAllowed = 0x02 // connection not allowed by ruleset
	replyBadCommand = 0x07
	replyBadAddress = 0x08
)

// HashLen is the length of a stream's DST.ADDR: SHA-1 in hexadecimal.
const HashLen = 40

// errSocks is a SOCKS5 exchange the proxy cannot take; reply is what it answers first
// (0 when nothing can be answered).
type errSocks struct {
	reply byte
	msg   string
}

func (e *errSocks) Error() string { return "proxy65: " + e.msg }

// greet reads the client's method selection and answers it: only "no authentication" is
// offered (XEP-0065 leaves authentication out of scope).
func greet(rw io.ReadWriter) error {
	var h [2]byte
	if _, err := io.ReadFull(rw, h[:]); err != nil {
		return err
	}
	if h[0] != socksVersion {
		return &errSocks{msg: fmt.Sprintf("SOCKS version %d", h[0])}
	}
	var methods [255]byte
	m := methods[:h[1]]
	if _, err := io.ReadFull(rw, m); err != nil {
		return err
	}
	for _, x := range m {
		if x == methodNoAuth {
			_, err := rw.Write([]byte{socksVersion, methodNoAuth})
			return err
		}
	}
	rw.Write([]byte{socksVersion, methodNone})
	return &errSocks{msg: "client offers no method without authentication"}
}

// request is a CONNECT request: the stream hash in lower case, and DST.ADDR and DST.PORT
// as the client sent them, which the reply repeats (XEP-0065 §6.3.2).
type request struct {
	hash string
	dst  [HashLen + 2]byte
}

// readRequest reads a CONNECT request, whose DST.ADDR must be a stream hash (40
// hexadecimal digits, compared in lower case). DST.PORT is not checked: the XEP says 0,
// and nothing depends on it.
func readRequest(r io.Reader) (request, error) {
	var req request
	var h [5]byte // VER CMD RSV ATYP LEN
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return req, err
	}
	switch {
	case h[0] != socksVersion:
		return req, &errSocks{msg: fmt.Sprintf("SOCKS version %d", h[0])}
	case h[1] != cmdConnect:
		return req, &errSocks{reply: replyBadCommand, msg: fmt.Sprintf("command %d (only CONNECT)", h[1])}
	case h[3] != atypDomainName:
		return req, &errSocks{reply: replyBadAddress, msg: fmt.Sprintf("address type %d (only a domain name, the stream hash)", h[3])}
	case h[4] != HashLen:
		return req, &errSocks{reply: replyBadAddress, msg: fmt.Sprintf("destination of %d bytes (a stream hash has %d)", h[4], HashLen)}
	}
	if _, err := io.ReadFull(r, req.dst[:]); err != nil {
		return req, err
	}
	var lower [HashLen]byte
	for i, c := range req.dst[:HashLen] {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
			lower[i] = c
		case 'A' <= c && c <= 'F':
			lower[i] = c + ('a' - 'A')
		default:
			return req, &errSocks{reply: replyBadAddress, msg: "destination is not a hexadecimal stream hash"}
		}
	}
	req.hash = string(lower[:])
	return req, nil
}

// reply is the answer to a CONNECT: BND.ADDR and BND.PORT repeat the request's (XEP-0065
// §6.3.2); without a request (an error before it was read) they are empty.
func reply(code byte, req *request) []byte {
	if req == nil {
		return []byte{socksVersion, code, 0x00, atypDomainName, 0, 0, 0}
	}
	b := make([]byte, 0, 5+len(req.dst))
	b = append(b, socksVersion, code, 0x00, atypDomainName, HashLen)
	return append(b, req.dst[:]...)
}

// errClosed says the module is stopping.
var errClosed = errors.New("proxy65: stopped")
