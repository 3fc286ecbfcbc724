package dashboard

import (
	"io/fs"
	"net/http"
	"os"
	"strings"
)

// filesCSP keeps a stored file from running anything if a browser renders it.
const filesCSP = "sandbox; default-src 'none'; media-src 'self'; img-src 'self'; style-src 'unsafe-inline'"

// fileHandler serves regular files under OutDir, read-only: no directory
// listings, no dotfiles, nothing outside OutDir (symbolic links included,
// through os.Root).
func (s *Server) fileHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/files/")
		if !ok || s.cfg.OutDir == "" || !fileName(name) {
			http.NotFound(w, r)
			return
		}
		root, err := os.OpenRoot(s.cfg.OutDir)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer root.Close()
		f, err := root.Open(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Security-Policy", filesCSP)
		http.ServeContent(w, r, st.Name(), st.ModTime(), f)
	})
}

// fileName reports whether name is a path /files/ may serve: relative,
// clean, and without a segment that starts with a dot.
func fileName(name string) bool {
	if name == "" || !fs.ValidPath(name) {
		return false
	}
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return true
}
