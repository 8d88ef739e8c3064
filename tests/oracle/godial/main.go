// A real Go client dialing with a source address (net.Dialer.LocalAddr): Go binds the socket to
// that address with port 0, then connects, without IP_BIND_ADDRESS_NO_PORT, so each connection's
// port comes from bind(). Dials 127.0.0.1:PORT0.. (COUNT ports, round robin) from 127.0.0.1 until
// the kernel refuses or LIMIT connections are open, prints "ready N ERROR" and holds them until
// its standard input closes. Used by tests/oracle/oracle.py (scenario go-local-addr).
package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

func main() {
	port0, _ := strconv.Atoi(os.Args[1])
	ports, _ := strconv.Atoi(os.Args[2])
	limit, _ := strconv.Atoi(os.Args[3])
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}
	var held []net.Conn
	refusal := "-"
	for i := 0; i < limit; i++ {
		c, err := dialer.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port0+i%ports))
		if err != nil {
			var errno syscall.Errno
			switch {
			case errors.As(err, &errno) && errno == syscall.EADDRINUSE:
				refusal = "EADDRINUSE"
			case errors.As(err, &errno) && errno == syscall.EADDRNOTAVAIL:
				refusal = "EADDRNOTAVAIL"
			default:
				refusal = err.Error()
			}
			break
		}
		held = append(held, c)
	}
	fmt.Printf("ready %d %s\n", len(held), refusal)
	bufio.NewReader(os.Stdin).ReadString('\n')
	for _, c := range held {
		c.Close()
	}
}
