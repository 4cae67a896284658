package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Dev-mode S3: versitygw (installed into ./bin by `make run`) with object
// lock and versioning on a local directory.
const (
	devS3Access = "chaperone-dev"
	devS3Secret = "chaperone-dev-secret-key"
	devS3Bucket = "chaperone-recordings"
)

// startDevS3 runs versitygw as a child process until ctx ends and makes the
// recordings bucket (with Object Lock) if it does not exist.
func startDevS3(ctx context.Context, bin, addr, dataDir string, log *slog.Logger) error {
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("versitygw not found at %s: run `make run` (it installs it into ./bin) or pass -versitygw", bin)
	}
	dataDir, err := filepath.Abs(dataDir) // versitygw resolves relative paths against its root
	if err != nil {
		return fmt.Errorf("dev S3 data: %w", err)
	}
	objects, versions := filepath.Join(dataDir, "objects"), filepath.Join(dataDir, "versions")
	for _, d := range []string{objects, versions} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("dev S3 data: %w", err)
		}
	}
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("dev S3: %s is already in use (is another chaperone dev running? pass -s3_listen)", addr)
	}
	cmd := exec.CommandContext(ctx, bin, "--access", devS3Access, "--secret", devS3Secret, "--port", addr, "--quiet",
		"posix", "--versioning-dir", versions, objects)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	go func() {
		err := cmd.Wait()
		if ctx.Err() == nil {
			log.Error("dev S3 (versitygw) stopped", slog.Any("err", err))
		}
	}()
	cl, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(devS3Access, devS3Secret, ""), Region: "us-east-1"})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := cl.BucketExists(ctx, devS3Bucket)
		if err == nil {
			if !ok {
				if err := cl.MakeBucket(ctx, devS3Bucket, minio.MakeBucketOptions{Region: "us-east-1", ObjectLocking: true}); err != nil {
					return fmt.Errorf("dev S3: make bucket: %w", err)
				}
			}
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(errors.New("dev S3 did not start"), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
