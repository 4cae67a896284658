//go:build !linux

package sfu

import (
	"log/slog"
	"net"
	"sync/atomic"
)

// Batched sends need sendmmsg and the SFU's own socket (Linux). Elsewhere
// the SFU's writer sends each packet with WriteTo: sockDst is always empty.

const batchSlotSize = 2048

// udpSocket is never made here; discard keeps the benchmarks' hook compiling.
type udpSocket struct{ discard atomic.Bool }

type sockDst struct{ sock *udpSocket }

func makeDst(*udpSocket, *net.UDPAddr) sockDst { return sockDst{} }

func ownSocket(net.PacketConn) *udpSocket { return nil }

type sendBatch struct{}

func newSendBatch(*slog.Logger) *sendBatch  { return &sendBatch{} }
func (b *sendBatch) slot(*udpSocket) []byte { return nil }
func (b *sendBatch) commit(*sockDst, int)   {}
func (b *sendBatch) flush()                 {}
