package batch

// SetChunk sets how many rows Enqueue writes per round trip.
func (s *Store) SetChunk(n int) { s.chunk = n }
