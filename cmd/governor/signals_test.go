package main

import (
	"context"
	"testing"
	"time"
)

// within returns fn's result, or gives up on a blocked fn when ctx ends.
func TestWithin(t *testing.T) {
	if v, ok := within(context.Background(), func() int { return 7 }); !ok || v != 7 {
		t.Errorf("finished fn: %d %v", v, ok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	block := make(chan struct{})
	defer close(block)
	start := time.Now()
	if _, ok := within(ctx, func() int { <-block; return 1 }); ok {
		t.Error("a blocked fn reported finished")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}
}
