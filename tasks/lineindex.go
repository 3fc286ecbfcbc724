package tasks

import "math/bits"

// LineIndex maps 64-bit keys (hashes) to the line numbers of a file, in
// about 18 bytes a key: an open-addressing table of keys and lines, kept
// between 53% and 80% full. Reading a million-row file keeps two of them
// (repeated ids, duplicate rows), so it stays small; Go's map takes twice
// as much. Line numbers must be positive.
type LineIndex struct {
	keys  []uint64
	lines []int32 // 0: an empty slot
	n     int
}

// lineIndexMinSlots is the size of a new index's table.
const lineIndexMinSlots = 1024

// Get returns the line stored for key, if any.
func (x *LineIndex) Get(key uint64) (int, bool) {
	if x.n == 0 {
		return 0, false
	}
	for i := x.slot(key); ; i = x.next(i) {
		switch {
		case x.lines[i] == 0:
			return 0, false
		case x.keys[i] == key:
			return int(x.lines[i]), true
		}
	}
}

// Put stores line for key unless key has a line already.
func (x *LineIndex) Put(key uint64, line int) {
	if (x.n+1)*5 > len(x.lines)*4 {
		x.grow()
	}
	x.put(key, int32(line))
}

func (x *LineIndex) put(key uint64, line int32) {
	i := x.slot(key)
	for ; x.lines[i] != 0; i = x.next(i) {
		if x.keys[i] == key {
			return
		}
	}
	x.keys[i], x.lines[i] = key, line
	x.n++
}

// slot maps key to a slot, for any table size.
func (x *LineIndex) slot(key uint64) int {
	hi, _ := bits.Mul64(key, uint64(len(x.lines)))
	return int(hi)
}

func (x *LineIndex) next(i int) int {
	if i++; i == len(x.lines) {
		return 0
	}
	return i
}

// grow moves the entries to a table half as large again.
func (x *LineIndex) grow() {
	keys, lines := x.keys, x.lines
	size := max(lineIndexMinSlots, len(lines)+len(lines)/2)
	x.keys, x.lines, x.n = make([]uint64, size), make([]int32, size), 0
	for i, l := range lines {
		if l != 0 {
			x.put(keys[i], l)
		}
	}
}
