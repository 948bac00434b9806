package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// BlockInfo is one block of a recording as its header describes it.
type BlockInfo struct {
	File   string
	Offset int64     // of the header in File
	Bytes  int64     // on disk: header and frame
	Ticks  int       // ticks it holds
	First  time.Time // its first tick's time
}

// Blocks lists the blocks of a recording (a directory of segments, oldest
// first, or one segment file) from their headers alone: nothing is
// decompressed or checked against its CRC. A torn tail ends a file's list.
// It is what the size of a recording per tick is measured with.
func Blocks(path string) ([]BlockInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	files := []string{path}
	if fi.IsDir() {
		segs, err := segments(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, s := range segs {
			files = append(files, s.path)
		}
	}
	var out []BlockInfo
	for _, name := range files {
		bs, err := fileBlocks(name)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}

func fileBlocks(name string) ([]BlockInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	var out []BlockInfo
	var hdr [headerLen]byte
	for off := int64(0); ; {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil // the end, or a torn header
			}
			return nil, fmt.Errorf("record: %w", err)
		}
		if binary.LittleEndian.Uint32(hdr[0:]) != skippableMagic || binary.LittleEndian.Uint32(hdr[4:]) != 24 ||
			(string(hdr[8:12]) != blockMagic && string(hdr[8:12]) != blockMagicV1) {
			return nil, &CorruptError{File: name, Offset: off, Why: "not a recording block header"}
		}
		n := headerLen + int64(binary.LittleEndian.Uint32(hdr[12:]))
		if off+n > st.Size() {
			return out, nil // torn tail
		}
		out = append(out, BlockInfo{File: name, Offset: off, Bytes: n,
			Ticks: int(binary.LittleEndian.Uint32(hdr[20:])),
			First: time.Unix(0, int64(binary.LittleEndian.Uint64(hdr[24:])))})
		off += n
	}
}
