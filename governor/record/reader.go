package record

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// CorruptError says where a recording is damaged.
type CorruptError struct {
	File   string
	Offset int64 // byte offset of the block (or of the bad header) in File
	Line   int   // line in the block's JSON, 0 if not about a line
	Why    string
}

func (e *CorruptError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: offset %d: line %d of block: %s", e.File, e.Offset, e.Line, e.Why)
	}
	return fmt.Sprintf("%s: offset %d: %s", e.File, e.Offset, e.Why)
}

// Reader reads a recording tick by tick: a directory of segments (oldest
// first) or a single segment file.
type Reader struct {
	files    []string
	fi       int
	f        *os.File
	br       *bufio.Reader
	name     string
	off      int64
	dec      *zstd.Decoder
	lines    [][]byte
	lineNo   int
	blockOff int64
	stream   bool // NewReader's: br is the only input
	done     bool
	state    blockState // the open block's baselines for delta records
	zb       bytes.Buffer
	raw      []byte
	lineBuf  [][]byte
	// Warnings: torn tails skipped (a crash while writing), one line
	// each with file and offset.
	Warnings []string
}

// OpenReader opens a recording directory or segment file.
func OpenReader(path string) (*Reader, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	var files []string
	if fi.IsDir() {
		segs, err := segments(path)
		if err != nil {
			return nil, err
		}
		for _, s := range segs {
			files = append(files, s.path)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("record: %s: no segment files (%s*%s)", path, segPrefix, segSuffix)
		}
	} else {
		files = []string{path}
	}
	dec, err := decoder()
	if err != nil {
		return nil, err
	}
	return &Reader{files: files, dec: dec}, nil
}

// NewReader reads one segment's bytes from rd; name is what errors call
// it.
func NewReader(name string, rd io.Reader) (*Reader, error) {
	dec, err := decoder()
	if err != nil {
		return nil, err
	}
	return &Reader{dec: dec, name: name, br: bufio.NewReader(rd), stream: true}, nil
}

// decoder is shared by all readers (DecodeAll may run concurrently).
var decoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxFrame), zstd.WithDecoderMaxWindow(maxFrame))
})

// Close releases the reader.
func (r *Reader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// Next returns the next tick, io.EOF at the end, or a *CorruptError.
func (r *Reader) Next() (*Tick, error) {
	for len(r.lines) == 0 {
		if err := r.nextBlock(); err != nil {
			return nil, err
		}
	}
	line := r.lines[0]
	r.lines = r.lines[1:]
	r.lineNo++
	t := new(Tick)
	if r.lineNo == 1 {
		r.state.reset() // each block stands alone
	}
	if err := decodeTickIn(line, t, &r.state); err != nil {
		// The block's baselines are now in doubt: its later delta
		// records are errors too, not values applied to the wrong base.
		r.state.reset()
		return nil, &CorruptError{File: r.name, Offset: r.blockOff, Line: r.lineNo, Why: "bad tick: " + err.Error()}
	}
	if t.Time.IsZero() {
		return nil, &CorruptError{File: r.name, Offset: r.blockOff, Line: r.lineNo, Why: "tick without a time"}
	}
	return t, nil
}

// nextBlock loads the next block's lines, opening the next file as
// needed.
func (r *Reader) nextBlock() error {
	for {
		if r.stream {
			if r.done {
				return io.EOF
			}
			lines, err := r.readBlock()
			if err == io.EOF {
				r.done = true
			}
			if err != nil {
				return err
			}
			r.lines, r.lineNo = lines, 0
			if len(lines) > 0 {
				return nil
			}
			continue
		}
		if r.f == nil {
			if r.fi >= len(r.files) {
				return io.EOF
			}
			f, err := os.Open(r.files[r.fi])
			if errors.Is(err, os.ErrNotExist) && len(r.files) > 1 {
				// The ring dropped it since the listing (a live daemon's
				// directory): it is older than what follows.
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s: removed by the recorder while reading; skipped", r.files[r.fi]))
				r.fi++
				continue
			}
			if err != nil {
				return fmt.Errorf("record: %w", err)
			}
			r.f, r.br, r.name, r.off = f, bufio.NewReaderSize(f, 1<<16), r.files[r.fi], 0
			r.fi++
		}
		lines, err := r.readBlock()
		if err == io.EOF {
			r.f.Close()
			r.f = nil
			continue
		}
		if err != nil {
			return err
		}
		r.lines, r.lineNo = lines, 0
		if len(lines) > 0 {
			return nil
		}
	}
}

// errTorn marks a block cut short by the end of its file.
var errTorn = errors.New("torn")

func (r *Reader) readBlock() ([][]byte, error) {
	start := r.off
	bad := func(why string, a ...any) error {
		return &CorruptError{File: r.name, Offset: start, Why: fmt.Sprintf(why, a...)}
	}
	var hdr [headerLen]byte
	n, err := io.ReadFull(r.br, hdr[:])
	r.off += int64(n)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err == io.ErrUnexpectedEOF {
		return nil, r.torn(start, "block header")
	}
	if err != nil {
		return nil, bad("%v", err)
	}
	if m := binary.LittleEndian.Uint32(hdr[0:]); m != skippableMagic {
		return nil, bad("not a recording block (magic %#08x, want %#08x)", m, skippableMagic)
	}
	if l := binary.LittleEndian.Uint32(hdr[4:]); l != 24 || (string(hdr[8:12]) != blockMagic && string(hdr[8:12]) != blockMagicV1) {
		return nil, bad("unknown block header (length %d, tag %q)", l, hdr[8:12])
	}
	zlen := binary.LittleEndian.Uint32(hdr[12:])
	sum := binary.LittleEndian.Uint32(hdr[16:])
	if zlen == 0 || zlen > maxFrame {
		return nil, bad("block length %d out of range (1..%d)", zlen, maxFrame)
	}
	// Read what is there, not what the header claims: a hostile length
	// costs no more memory than the file has bytes.
	// Buffers are reused from block to block, but not the size a
	// hostile or odd block made them.
	if r.zb.Cap() > 16<<20 {
		r.zb = bytes.Buffer{}
	}
	if cap(r.raw) > 16<<20 {
		r.raw = nil
	}
	zb := &r.zb // nothing decoded refers to it
	zb.Reset()
	m, err := io.CopyN(zb, r.br, int64(zlen))
	r.off += m
	if err == io.EOF {
		return nil, r.torn(start, fmt.Sprintf("block of %d bytes, %d present", zlen, m))
	}
	if err != nil {
		return nil, bad("%v", err)
	}
	data := zb.Bytes()
	if got := crc32.Checksum(data, crcTable); got != sum {
		return nil, bad("block checksum mismatch (crc32c %#08x, header says %#08x)", got, sum)
	}
	// r.raw is reused too: ticks copy what they keep from their line,
	// and a block's lines are all read before the next block is.
	raw, err := r.dec.DecodeAll(data, r.raw[:0])
	if err != nil {
		return nil, bad("block does not decompress: %v", err)
	}
	r.raw = raw
	r.blockOff = start
	lines := r.lineBuf[:0]
	for rest := raw; len(rest) > 0; {
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(bytes.TrimSpace(l)) > 0 {
			lines = append(lines, l)
		}
	}
	r.lineBuf = lines
	return lines, nil
}

// torn handles a block cut short by the end of the file: skipped with a
// warning when it is the file's tail (what a crash leaves).
func (r *Reader) torn(start int64, what string) error {
	r.Warnings = append(r.Warnings, fmt.Sprintf("%s: offset %d: torn tail skipped (%s; the writer stopped mid-block)", r.name, start, what))
	return io.EOF
}
