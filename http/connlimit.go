package http

import (
	"io"
	"net"
	"sync"
)

// DefaultMaxConnsPerAddress is the default cap on open connections from one
// remote IP address: far above what a CI runner, a notebook or a job's
// MLflow client opens, far below what exhausts the server's file
// descriptors.
const DefaultMaxConnsPerAddress = 256

// perAddressListener closes, as soon as they are accepted, connections from
// an address that already holds max open ones, so that one client cannot
// take every file descriptor and goroutine the server has.
type perAddressListener struct {
	net.Listener
	max int
	// refused is called for each connection closed over the cap.
	refused func()

	mu   sync.Mutex
	open map[string]int
}

func limitConnsPerAddress(ln net.Listener, max int, refused func()) net.Listener {
	return &perAddressListener{Listener: ln, max: max, refused: refused, open: map[string]int{}}
}

// Accept returns the next connection within the cap. Connections over it
// are closed here and never reach the HTTP server; an error from Accept
// itself would make the server pause or stop accepting altogether.
func (l *perAddressListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteIP(c)
		l.mu.Lock()
		if l.open[addr] >= l.max {
			l.mu.Unlock()
			c.Close()
			if l.refused != nil {
				l.refused()
			}
			continue
		}
		l.open[addr]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(addr) }}, nil
	}
}

func (l *perAddressListener) release(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr]--; l.open[addr] <= 0 {
		delete(l.open, addr)
	}
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// countedConn gives its slot back when closed, whoever closes it: the HTTP
// server, or a handler that took the connection over.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and frees its slot once.
func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// ReadFrom keeps the kernel's copy (sendfile, splice) for responses sent
// from files, which wrapping the TCP connection would otherwise hide.
func (c *countedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// writerOnly hides a writer's ReadFrom, so io.Copy does not call back into
// it.
type writerOnly struct{ io.Writer }
