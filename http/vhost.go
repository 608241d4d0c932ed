package http

import "net/http"

// VirtualHost serves requests for host names other than the server's own
// as requests below a path prefix of this server: match returns the
// prefix for a request's Host (with its port, as sent), or false for the
// server's own names. The Azure ML SDK sends its uploads to
// https://<account>.blob.<suffix>/<container>/<blob>, a host name it
// builds itself, whose API is served below a prefix like any other
// group's. Call it before serving.
func (s *Server) VirtualHost(match func(host string) (prefix string, ok bool)) {
	s.vhosts = append(s.vhosts, match)
}

// routeVirtualHost moves a request for a virtual host below its prefix.
func (s *Server) routeVirtualHost(r *http.Request) {
	for _, match := range s.vhosts {
		prefix, ok := match(r.Host)
		if !ok {
			continue
		}
		r.URL.Path = prefix + r.URL.Path
		if r.URL.RawPath != "" {
			r.URL.RawPath = prefix + r.URL.RawPath
		}
		return
	}
}
