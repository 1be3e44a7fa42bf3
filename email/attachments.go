package email

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"unicode/utf8"

	"github.com/ticketcore/ticketcore/domain"
)

// AttachmentStore keeps attachment content on disk, addressed by its SHA-256:
// <dir>/sha256/<first two hex digits>/<hex>. Events hold only the reference
// (domain.Attachment). A file is written to a temporary name in the same folder,
// synced, then renamed, so a reader never sees a partial file; the same content is
// stored once.
type AttachmentStore struct {
	Dir string
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Path is where content with that SHA-256 (lower-case hex) is stored.
func (s *AttachmentStore) Path(sum string) (string, error) {
	if !sha256Hex.MatchString(sum) {
		return "", fmt.Errorf("attachment: %q is not a SHA-256", sum)
	}
	return filepath.Join(s.Dir, "sha256", sum[:2], sum), nil
}

// Put stores content and returns its reference.
func (s *AttachmentStore) Put(name, contentType string, data []byte) (domain.Attachment, error) {
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	path, _ := s.Path(hexSum)
	ref := domain.Attachment{Name: attachmentName(name), ContentType: contentType, Size: int64(len(data)), SHA256: hexSum}
	if fi, err := os.Stat(path); err == nil && fi.Size() == int64(len(data)) {
		return ref, nil // already stored
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return domain.Attachment{}, err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+hexSum[:8]+"-*")
	if err != nil {
		return domain.Attachment{}, err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return domain.Attachment{}, fmt.Errorf("store attachment %s: %w", hexSum, err)
	}
	return ref, nil
}

// Open reads stored content.
func (s *AttachmentStore) Open(sum string) (io.ReadCloser, error) {
	path, err := s.Path(sum)
	if err != nil {
		return nil, err
	}
	return os.Open(path)
}

// attachmentName keeps a file name usable in an event: one line, at most 200
// characters, no path.
func attachmentName(name string) string {
	name = cleanLine(filepath.Base(filepath.ToSlash(name)))
	if name == "." || name == "/" || name == "" {
		name = "attachment"
	}
	for utf8.RuneCountInString(name) > domain.MaxNameLen {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}
