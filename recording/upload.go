package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// PartSize is the multipart part size of uploads. minio-go holds one part
// in memory per upload.
const PartSize = 5 << 20

// PutBytes stores body at key under Object Lock retention until
// retainUntil and returns the stored version.
func (b *Bucket) PutBytes(ctx context.Context, key string, body []byte, retainUntil time.Time) (UploadInfo, error) {
	if err := checkRetainUntil(key, retainUntil); err != nil {
		return UploadInfo{}, err
	}
	info, err := b.client.PutObject(ctx, b.name, key, bytes.NewReader(body), int64(len(body)), b.putOptions(key, retainUntil, nil))
	if err != nil {
		return UploadInfo{}, fmt.Errorf("recording: put %s: %w", key, err)
	}
	return UploadInfo{Key: key, VersionID: info.VersionID, Size: info.Size}, nil
}

// Source is a file that may still be growing, as the uploader reads it.
type Source interface {
	// ReadAt reads like io.ReaderAt; the uploader reads only below Synced.
	ReadAt(p []byte, off int64) (int, error)
	// Synced is how many bytes from the start are durable so far.
	Synced() int64
	// Done reports that the writer has closed: Synced is final.
	Done() bool
}

// UploadInfo describes a stored object version.
type UploadInfo struct {
	Key       string
	VersionID string
	Size      int64
}

// putOptions are the options of every object the gateway writes: retention
// from the start (a multipart upload keeps what it was created with), and
// no aws-chunked encoding, which versitygw does not take.
func (b *Bucket) putOptions(key string, retainUntil time.Time, meta map[string]string) minio.PutObjectOptions {
	return minio.PutObjectOptions{
		UserMetadata:         meta,
		ContentType:          contentType(key),
		Mode:                 b.mode,
		RetainUntilDate:      retainUntil.UTC(),
		PartSize:             PartSize,
		DisableContentSha256: true,
	}
}

func checkRetainUntil(key string, retainUntil time.Time) error {
	if retainUntil.IsZero() {
		return fmt.Errorf("recording: upload %s: no retention date", key)
	}
	return nil
}

// Upload streams src to key as one object under Object Lock retention
// (the bucket's mode, until retainUntil), reading from offset 0 up to
// src.Synced() and waiting for more while !src.Done(). It returns once the
// object is complete, with everything up to the final Synced() in it.
//
// started, if not nil, is called once S3 has accepted the upload: the bucket
// answered a HEAD, and the multipart upload (with its retention) was created
// — minio-go reads the first byte of a stream of unknown size only after
// CreateMultipartUpload has succeeded. Until started is called nothing is
// known to be recorded.
//
// While it waits for bytes Upload checks every few seconds that S3 still
// answers, so a lost server is noticed even when the source grows slowly.
// On any failure Upload returns the error and the incomplete upload is
// aborted where S3 still answers; to retry, call Upload again: it streams
// from offset 0 again, so the object equals the source byte for byte. Each
// call first aborts incomplete uploads of key that an earlier attempt could
// not abort, so only one Upload or UploadFile per key may run at a time.
func (b *Bucket) Upload(ctx context.Context, key string, src Source, retainUntil time.Time, meta map[string]string, started func()) (UploadInfo, error) {
	if err := checkRetainUntil(key, retainUntil); err != nil {
		return UploadInfo{}, err
	}
	if err := b.Ping(ctx); err != nil {
		return UploadInfo{}, fmt.Errorf("recording: upload %s: %w", key, err)
	}
	b.abortStale(ctx, key)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopHealth := b.watch(ctx, cancel)
	defer stopHealth()

	r := &sourceReader{ctx: ctx, src: src, poll: b.poll, first: started}
	info, err := b.client.PutObject(ctx, b.name, key, r, -1, b.putOptions(key, retainUntil, meta))
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
		return UploadInfo{}, fmt.Errorf("recording: upload %s: %w", key, err)
	}
	if info.Size != r.off {
		return UploadInfo{}, fmt.Errorf("recording: upload %s: stored %d bytes, read %d", key, info.Size, r.off)
	}
	return UploadInfo{Key: key, VersionID: info.VersionID, Size: info.Size}, nil
}

// abortStale aborts incomplete multipart uploads of key, left by an attempt
// that failed while S3 was away (they hold disk space and no lifecycle rule
// removes them). It is best effort: the upload that follows reports any
// real trouble with S3.
func (b *Bucket) abortStale(ctx context.Context, key string) {
	_ = b.client.RemoveIncompleteUpload(ctx, b.name, key)
}

// watch pings the bucket every b.health until stopped, and cancels ctx with
// the error if S3 stops answering.
func (b *Bucket) watch(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(b.health)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			pctx, c := context.WithTimeout(ctx, pingTimeout)
			err := b.Ping(pctx)
			c()
			if err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("S3 stopped answering: %w", err))
				return
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// sourceReader reads a growing Source from offset 0 to its end, waiting for
// more while the writer has not finished.
type sourceReader struct {
	ctx   context.Context
	src   Source
	poll  time.Duration
	first func()
	off   int64
}

func (r *sourceReader) Read(p []byte) (int, error) {
	if r.first != nil {
		r.first()
		r.first = nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		// Done before Synced: once Done is seen, the Synced read after
		// it is final.
		done := r.src.Done()
		synced := r.src.Synced()
		if r.off < synced {
			n := int(min(int64(len(p)), synced-r.off))
			n, err := r.src.ReadAt(p[:n], r.off)
			r.off += int64(n)
			if errors.Is(err, io.EOF) {
				if n == 0 {
					return 0, fmt.Errorf("source ends at %d bytes but reports %d synced", r.off, synced)
				}
				err = nil
			}
			return n, err
		}
		if done {
			return 0, io.EOF
		}
		t := time.NewTimer(r.poll)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return 0, context.Cause(r.ctx)
		case <-t.C:
		}
	}
}

// UploadFile uploads the complete file at path to key under Object Lock
// retention until retainUntil. Like Upload, it first aborts incomplete
// uploads of key.
func (b *Bucket) UploadFile(ctx context.Context, key, path string, retainUntil time.Time, meta map[string]string) (UploadInfo, error) {
	if err := checkRetainUntil(key, retainUntil); err != nil {
		return UploadInfo{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return UploadInfo{}, fmt.Errorf("recording: upload %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return UploadInfo{}, fmt.Errorf("recording: upload %s: %w", key, err)
	}
	b.abortStale(ctx, key)
	info, err := b.client.PutObject(ctx, b.name, key, f, fi.Size(), b.putOptions(key, retainUntil, meta))
	if err != nil {
		return UploadInfo{}, fmt.Errorf("recording: upload %s from %s: %w", key, path, err)
	}
	return UploadInfo{Key: key, VersionID: info.VersionID, Size: info.Size}, nil
}

// PutJSON stores v as JSON at key under Object Lock retention until
// retainUntil.
func (b *Bucket) PutJSON(ctx context.Context, key string, v any, retainUntil time.Time) error {
	if err := checkRetainUntil(key, retainUntil); err != nil {
		return err
	}
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("recording: put %s: %w", key, err)
	}
	if _, err := b.client.PutObject(ctx, b.name, key, bytes.NewReader(body), int64(len(body)), b.putOptions(key, retainUntil, nil)); err != nil {
		return fmt.Errorf("recording: put %s: %w", key, err)
	}
	return nil
}
