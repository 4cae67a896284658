//go:build !linux

package sfu

import (
	"net"
	"sync"
)

// Batched sends need sendmmsg (Linux). Elsewhere the SFU sends each packet
// on its own and batchConn is never made.
type batchConn struct{ mu sync.Mutex }

func (c *batchConn) flushLocked() {}

func (g *batchGroup) wrap(c net.PacketConn) net.PacketConn { return c }
