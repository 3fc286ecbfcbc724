package dashboard

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/seedbatch/seedbatch/batch"
)

// Objects is a bucket of stored files (objstore.Bucket).
type Objects interface {
	// Link returns a URL of key: a signed http(s) URL valid for expiry
	// where the bucket signs, another URL otherwise.
	Link(ctx context.Context, key string, expiry time.Duration) (string, error)
	// Open reads the object key.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, error)
}

// FileLinkExpiry is how long the signed URL a /files/ link redirects to
// lasts.
const FileLinkExpiry = 15 * time.Minute

// filesCSP keeps a stored file from running anything if a browser renders it.
const filesCSP = "sandbox; default-src 'none'; media-src 'self'; img-src 'self'; style-src 'unsafe-inline'"

// filePattern is the one route that serves a file: the n-th file recorded
// on a job, /files/{batch}/{row}/{n}.
const filePattern = "/files/{batch}/{row}/{n}"

// fileHref is the link to the n-th file of a job.
func fileHref(b string, row, n int) string {
	return "/files/" + url.PathEscape(b) + "/" + strconv.Itoa(row) + "/" + strconv.Itoa(n)
}

// fileHandler serves the videos recorded on job rows and nothing else:
// the path names a job and an index into its Files, never a file, so
// whatever else the output directory holds (results, journals, secrets,
// stray files) cannot be reached. The file is opened under OutDir through
// os.Root (no symbolic link leads out), must be a regular file, and is
// served read-only, sandboxed, for GET and HEAD.
func (s *Server) fileHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b := r.PathValue("batch")
		row, okRow := index(r.PathValue("row"))
		n, okN := index(r.PathValue("n"))
		if (s.cfg.OutDir == "" && s.cfg.Objects == nil) || batch.ValidateBatchID(b) != nil || !okRow || !okN {
			http.NotFound(w, r)
			return
		}
		job, err := s.cfg.Store.Job(r.Context(), b, row)
		if errors.Is(err, batch.ErrNotFound) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			s.log.Error("dashboard_file", "batch", b, "row", row, "err", err)
			http.Error(w, "internal error; see the dashboard's log", http.StatusInternalServerError)
			return
		}
		if n >= len(job.Files) || !fileName(job.Files[n].Path) {
			http.NotFound(w, r)
			return
		}
		if s.cfg.Objects != nil {
			s.serveObject(w, r, job.Files[n].Path)
			return
		}
		root, err := os.OpenRoot(s.cfg.OutDir)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer root.Close()
		f, err := root.Open(job.Files[n].Path)
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

// serveObject redirects to a signed URL of the object key, or serves its
// content where the bucket signs no URL.
func (s *Server) serveObject(w http.ResponseWriter, r *http.Request, key string) {
	link, err := s.cfg.Objects.Link(r.Context(), key, FileLinkExpiry)
	if err != nil {
		s.log.Error("dashboard_file", "key", key, "err", err)
		http.Error(w, "internal error; see the dashboard's log", http.StatusInternalServerError)
		return
	}
	if strings.HasPrefix(link, "https://") || strings.HasPrefix(link, "http://") {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, link, http.StatusFound)
		return
	}
	obj, err := s.cfg.Objects.Open(r.Context(), key)
	if errors.Is(err, fs.ErrNotExist) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.log.Error("dashboard_file", "key", key, "err", err)
		http.Error(w, "internal error; see the dashboard's log", http.StatusInternalServerError)
		return
	}
	defer obj.Close()
	w.Header().Set("Content-Security-Policy", filesCSP)
	http.ServeContent(w, r, path.Base(key), time.Time{}, obj)
}

// index parses a row number or file index: digits only, in canonical form.
func index(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && strconv.Itoa(n) == s
}

// fileName reports whether a recorded path may be served: relative,
// clean, and without a segment that starts with a dot.
func fileName(name string) bool {
	if name == "" || !fs.ValidPath(name) || strings.ContainsRune(name, '\\') {
		return false
	}
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return true
}
