package main

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// wireCounter is a TCP proxy in front of PostgreSQL that counts the
// messages the server's connections send: Parse, Bind, Execute, Sync and
// simple Query. Each Sync and each Query waits for the database's
// ReadyForQuery, so their sum is the number of round trips on the wire,
// whatever the driver or the statement cache do.
type wireCounter struct {
	on    atomic.Bool
	mu    sync.Mutex
	count map[byte]int
}

// listen starts the proxy to target and returns its address.
func (w *wireCounter) listen(target string) (string, error) {
	w.count = map[byte]int{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go w.serve(c, target)
		}
	}()
	return ln.Addr().String(), nil
}

func (w *wireCounter) serve(c net.Conn, target string) {
	defer c.Close()
	s, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { _, _ = io.Copy(c, s) }()
	// The startup message has no type byte: length, then its body.
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return
	}
	if _, err := s.Write(n[:]); err != nil {
		return
	}
	if _, err := io.CopyN(s, c, int64(binary.BigEndian.Uint32(n[:]))-4); err != nil {
		return
	}
	var h [5]byte
	for {
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return
		}
		if w.on.Load() {
			w.mu.Lock()
			w.count[h[0]]++
			w.mu.Unlock()
		}
		if _, err := s.Write(h[:]); err != nil {
			return
		}
		if _, err := io.CopyN(s, c, int64(binary.BigEndian.Uint32(h[1:]))-4); err != nil {
			return
		}
	}
}
