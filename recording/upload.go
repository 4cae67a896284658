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
	out := UploadInfo{Key: key, VersionID: info.VersionID, Size: info.Size, RetainUntil: retainUntil}
	return out, b.extendRetention(ctx, &out)
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
	Key         string
	VersionID   string
	Size        int64
	RetainUntil time.Time // the version's retention, as set
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
// The object is written once, as one version: a multipart upload whose
// part 1 (the first PartSize bytes, holding the header the WebM writer
// rewrites at Close) is sent last, once src is Done, and whose later parts
// are sent as soon as they are durable (bytes past the header are only
// ever appended). So the key never holds a streamed version and a final one.
//
// started, if not nil, is called once S3 has accepted the upload: the bucket
// answered, and the multipart upload (with its retention) was created. Until
// started is called nothing is known to be recorded.
//
// While it waits for bytes Upload checks every few seconds that S3 still
// answers, so a lost server is noticed even when the source grows slowly.
// On any failure Upload returns the error and aborts the incomplete upload
// where S3 still answers; to retry, call Upload again: it starts from
// offset 0 again, so the object equals the source byte for byte. Each call
// first aborts incomplete uploads of key that an earlier attempt could not
// abort, so only one Upload or UploadFile per key may run at a time.
//
// Once complete, the object's retention is extended (see extendRetention)
// so that it runs from the upload's completion.
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
	wrap := func(err error) error {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
		return fmt.Errorf("recording: upload %s: %w", key, err)
	}

	core := minio.Core{Client: b.client}
	opts := b.putOptions(key, retainUntil, meta)
	id, err := core.NewMultipartUpload(ctx, b.name, key, opts)
	if err != nil {
		return UploadInfo{}, wrap(err)
	}
	completed := false
	defer func() {
		if !completed {
			actx, c := context.WithTimeout(context.WithoutCancel(ctx), pingTimeout)
			_ = core.AbortMultipartUpload(actx, b.name, key, id)
			c()
		}
	}()
	if started != nil {
		started()
	}
	buf := make([]byte, PartSize)
	put := func(num int, off, n int64) (minio.CompletePart, error) {
		if _, err := readFull(src, buf[:n], off); err != nil {
			return minio.CompletePart{}, err
		}
		p, err := core.PutObjectPart(ctx, b.name, key, id, num, bytes.NewReader(buf[:n]), n, minio.PutObjectPartOptions{DisableContentSha256: true})
		if err != nil {
			return minio.CompletePart{}, err
		}
		return minio.CompletePart{PartNumber: num, ETag: p.ETag}, nil
	}
	var parts []minio.CompletePart
	off, num := int64(PartSize), 2
	for {
		// Done before Synced: once Done is seen, the Synced read after it
		// is final.
		done := src.Done()
		synced := src.Synced()
		switch {
		case synced-off >= PartSize:
			p, err := put(num, off, PartSize)
			if err != nil {
				return UploadInfo{}, wrap(err)
			}
			parts = append(parts, p)
			off, num = off+PartSize, num+1
			continue
		case done:
			if synced > off {
				p, err := put(num, off, synced-off)
				if err != nil {
					return UploadInfo{}, wrap(err)
				}
				parts = append(parts, p)
			}
			p, err := put(1, 0, min(synced, PartSize))
			if err != nil {
				return UploadInfo{}, wrap(err)
			}
			parts = append([]minio.CompletePart{p}, parts...)
			info, err := core.CompleteMultipartUpload(ctx, b.name, key, id, parts, opts)
			if err != nil {
				return UploadInfo{}, wrap(err)
			}
			completed = true
			out := UploadInfo{Key: key, VersionID: info.VersionID, Size: synced, RetainUntil: retainUntil}
			if err := b.extendRetention(ctx, &out); err != nil {
				return out, err
			}
			return out, nil
		}
		t := time.NewTimer(b.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return UploadInfo{}, wrap(context.Cause(ctx))
		case <-t.C:
		}
	}
}

// ErrRetentionNotExtended means an object was stored (with the retention
// it was created with) but its retention could not be extended to run
// from its completion. The object must not be written again for it.
var ErrRetentionNotExtended = errors.New("recording: retention not extended from the upload's completion")

// readFull reads len(p) bytes of src at off.
func readFull(src Source, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := src.ReadAt(p[n:], off+int64(n))
		n += m
		if err != nil && !(errors.Is(err, io.EOF) && n == len(p)) {
			return n, fmt.Errorf("read the spool at %d: %w", off+int64(n), err)
		}
	}
	return n, nil
}

// extendRetention makes the object's retention run from when S3 stored it:
// until at least its last-modified time plus the bucket's retention days
// (R6 counts from the last byte, not from the lesson's start). It never
// shortens a retention. info.RetainUntil is updated to what is set.
func (b *Bucket) extendRetention(ctx context.Context, info *UploadInfo) error {
	st, err := b.client.StatObject(ctx, b.name, info.Key, minio.StatObjectOptions{VersionID: info.VersionID})
	if err != nil {
		return fmt.Errorf("%w: %s: stat: %v", ErrRetentionNotExtended, info.Key, err)
	}
	if info.VersionID == "" {
		info.VersionID = st.VersionID
	}
	want := b.RetainUntil(st.LastModified).Add(time.Second).Truncate(time.Second)
	if !want.After(info.RetainUntil) {
		return nil
	}
	mode := b.mode
	if err := b.client.PutObjectRetention(ctx, b.name, info.Key, minio.PutObjectRetentionOptions{VersionID: info.VersionID, Mode: &mode, RetainUntilDate: &want}); err != nil {
		return fmt.Errorf("%w: %s to %s: %v", ErrRetentionNotExtended, info.Key, want.Format(time.RFC3339), err)
	}
	info.RetainUntil = want
	return nil
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
	out := UploadInfo{Key: key, VersionID: info.VersionID, Size: info.Size, RetainUntil: retainUntil}
	return out, b.extendRetention(ctx, &out)
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
	info, err := b.client.PutObject(ctx, b.name, key, bytes.NewReader(body), int64(len(body)), b.putOptions(key, retainUntil, nil))
	if err != nil {
		return fmt.Errorf("recording: put %s: %w", key, err)
	}
	return b.extendRetention(ctx, &UploadInfo{Key: key, VersionID: info.VersionID, Size: info.Size, RetainUntil: retainUntil})
}
