package recording

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinRetentionDays is the shortest retention the gateway accepts (R6).
const MinRetentionDays = 28

// Lock modes, as S3 names them.
const (
	LockGovernance = "GOVERNANCE"
	LockCompliance = "COMPLIANCE"
)

// Errors that callers (and start-up) branch on.
var (
	ErrNoBucket          = errors.New("recording: bucket does not exist")
	ErrNoObjectLock      = errors.New("recording: bucket does not have Object Lock enabled")
	ErrNoVersioning      = errors.New("recording: bucket does not have versioning enabled")
	ErrRetentionTooShort = errors.New("recording: retention is shorter than 28 days")
	ErrNotFound          = errors.New("recording: no such object")
)

// BucketConfig says where recordings go and how long they are kept.
// Endpoint is host[:port]; TLS selects https.
type BucketConfig struct {
	Endpoint      string
	TLS           bool
	Bucket        string
	AccessKey     string
	SecretKey     string
	Region        string // empty: ask the server
	RetentionDays int    // at least MinRetentionDays
	LockMode      string // LockGovernance or LockCompliance
}

// Bucket is an S3 bucket with versioning and Object Lock, checked when it
// was opened. It is safe for concurrent use.
type Bucket struct {
	client *minio.Client
	http   *http.Client // for the sub-resource reads minio-go cannot parse from versitygw
	name   string
	days   int
	mode   minio.RetentionMode

	// poll is how often Upload looks for new bytes in a growing source;
	// health is how often it checks that S3 still answers while it waits.
	poll, health time.Duration

	checked atomic.Bool // Check has passed once
}

// Client tuning: a request to a server that has gone away fails within a few
// seconds rather than minio-go's default ten retries.
const (
	maxRetries  = 4
	dialTimeout = 10 * time.Second
	pingTimeout = 5 * time.Second
)

func (c BucketConfig) validate() error {
	switch {
	case c.Endpoint == "":
		return errors.New("recording: s3_endpoint is required")
	case strings.Contains(c.Endpoint, "://"):
		return fmt.Errorf("recording: s3_endpoint %q must be host[:port] without a scheme (set s3_tls for https)", c.Endpoint)
	case c.Bucket == "":
		return errors.New("recording: s3_bucket is required")
	case c.AccessKey == "" || c.SecretKey == "":
		return errors.New("recording: s3_access_key and s3_secret_key are required")
	case c.RetentionDays < MinRetentionDays:
		return fmt.Errorf("%w: retention_days is %d; set it to %d or more", ErrRetentionTooShort, c.RetentionDays, MinRetentionDays)
	case c.LockMode != LockGovernance && c.LockMode != LockCompliance:
		return fmt.Errorf("recording: lock_mode %q is not %s or %s", c.LockMode, LockGovernance, LockCompliance)
	}
	return nil
}

// OpenBucket is NewBucket followed by Check: it fails unless S3 answers
// and the bucket has Object Lock and versioning.
func OpenBucket(ctx context.Context, cfg BucketConfig) (*Bucket, error) {
	b, err := NewBucket(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.Check(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// NewBucket checks cfg and makes a client, without talking to S3: the
// gateway starts while S3 is away. Check (or Ready) verifies the bucket
// once S3 answers.
func NewBucket(cfg BucketConfig) (*Bucket, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tr, err := minio.DefaultTransport(cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("recording: S3 transport: %w", err)
	}
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.TLS,
		Region:     cfg.Region,
		Transport:  tr,
		MaxRetries: maxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("recording: S3 client for %s: %w", cfg.Endpoint, err)
	}
	return &Bucket{
		client: client,
		http:   &http.Client{Transport: tr, Timeout: time.Minute},
		name:   cfg.Bucket,
		days:   cfg.RetentionDays,
		mode:   minio.RetentionMode(cfg.LockMode),
		poll:   200 * time.Millisecond,
		health: 5 * time.Second,
	}, nil
}

// Check connects and checks that the bucket exists and has Object Lock and
// versioning enabled. Each failure names the bucket and what is wrong, and
// wraps ErrNoBucket, ErrNoObjectLock or ErrNoVersioning where one applies
// (an unreachable S3 wraps none of them). Once a check has passed, Ready
// only pings.
func (b *Bucket) Check(ctx context.Context) error {
	if err := b.Ping(ctx); err != nil {
		return err
	}
	lock, _, _, _, err := b.client.GetObjectLockConfig(ctx, b.name)
	if err != nil && minio.ToErrorResponse(err).Code != "ObjectLockConfigurationNotFoundError" {
		return fmt.Errorf("recording: read the Object Lock configuration of bucket %q: %w", b.name, err)
	}
	if lock != "Enabled" {
		return fmt.Errorf("%w: bucket %q; create a bucket with Object Lock enabled (most servers cannot turn it on later)", ErrNoObjectLock, b.name)
	}
	v, err := b.client.GetBucketVersioning(ctx, b.name)
	if err != nil {
		return fmt.Errorf("recording: read the versioning state of bucket %q: %w", b.name, err)
	}
	if !v.Enabled() {
		return fmt.Errorf("%w: bucket %q; enable versioning on it", ErrNoVersioning, b.name)
	}
	b.checked.Store(true)
	return nil
}

// Ready reports whether recordings can be stored now: S3 answers and the
// bucket has passed Check (which it runs until it has).
func (b *Bucket) Ready(ctx context.Context) error {
	if b.checked.Load() {
		return b.Ping(ctx)
	}
	return b.Check(ctx)
}

// Misconfigured reports whether err (from Check or Ready) says the bucket
// itself is wrong (missing, no Object Lock, no versioning) rather than S3
// being unreachable: the gateway refuses to start on such a bucket.
func Misconfigured(err error) bool {
	return errors.Is(err, ErrNoBucket) || errors.Is(err, ErrNoObjectLock) || errors.Is(err, ErrNoVersioning)
}

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.name }

// Ping checks that S3 answers and the bucket exists.
func (b *Bucket) Ping(ctx context.Context) error {
	ok, err := b.client.BucketExists(ctx, b.name)
	if err != nil {
		return fmt.Errorf("recording: S3 at %s: bucket %q: %w", b.client.EndpointURL().Host, b.name, err)
	}
	if !ok {
		return fmt.Errorf("%w: bucket %q at %s; create it with Object Lock enabled", ErrNoBucket, b.name, b.client.EndpointURL().Host)
	}
	return nil
}

// RetainUntil is when a recording that started at start may be deleted:
// RetentionDays whole days of 24 hours later (counted in UTC, so a change to
// or from summer time never makes it an hour short).
func (b *Bucket) RetainUntil(start time.Time) time.Time {
	return start.UTC().AddDate(0, 0, b.days)
}

// Object is one version of an object, with the retention and legal hold S3
// reports for it. A delete marker has DeleteMarker set and nothing else but
// Key, VersionID and LastModified.
type Object struct {
	Key          string
	VersionID    string
	Size         int64
	RetainUntil  time.Time // zero: no retention
	Mode         string    // LockGovernance, LockCompliance or ""
	LegalHold    bool
	LastModified time.Time
	DeleteMarker bool
}

// versions lists every version and delete marker under prefix, without
// their lock state.
func (b *Bucket) versions(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	for o := range b.client.ListObjects(ctx, b.name, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("recording: list %q in bucket %q: %w", prefix, b.name, o.Err)
		}
		out = append(out, Object{Key: o.Key, VersionID: o.VersionID, Size: o.Size, LastModified: o.LastModified, DeleteMarker: o.IsDeleteMarker})
	}
	return out, nil
}

// listWorkers bounds the concurrent lock-state reads of List.
const listWorkers = 8

// List returns every version under prefix with its retention and legal hold
// as S3 reports them now.
//
// It reads them with GetObjectRetention and GetObjectLegalHold for each
// version rather than from HEAD headers: versitygw 1.8 omits the lock headers
// on a HEAD of a noncurrent version (while still enforcing the lock), and AWS
// omits them silently when the caller lacks the permission to read them.
func (b *Bucket) List(ctx context.Context, prefix string) ([]Object, error) {
	objs, err := b.versions(ctx, prefix)
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(objs))
	sem := make(chan struct{}, listWorkers)
	var wg sync.WaitGroup
	for i := range objs {
		if objs[i].DeleteMarker {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = b.readLock(ctx, &objs[i])
		})
	}
	wg.Wait()
	out := objs[:0]
	for i, o := range objs {
		switch {
		case errors.Is(errs[i], ErrNotFound):
			errs[i] = nil // deleted since it was listed
		case errs[i] == nil:
			out = append(out, o)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// readLock fills in o's retention and legal hold.
func (b *Bucket) readLock(ctx context.Context, o *Object) error {
	var ret struct {
		// Any root element: AWS answers <Retention>, versitygw 1.8
		// <ObjectLockRetention>, which minio-go's GetObjectRetention
		// refuses to parse.
		Mode            string `xml:"Mode"`
		RetainUntilDate string `xml:"RetainUntilDate"`
	}
	found, err := b.getSub(ctx, o.Key, o.VersionID, "retention", &ret)
	if err != nil {
		return err
	}
	if found && ret.RetainUntilDate != "" {
		t, err := time.Parse(time.RFC3339, ret.RetainUntilDate)
		if err != nil {
			return fmt.Errorf("recording: retention of %s (version %s): bad date %q", o.Key, o.VersionID, ret.RetainUntilDate)
		}
		o.Mode, o.RetainUntil = ret.Mode, t.UTC()
	}
	var hold struct {
		Status string `xml:"Status"`
	}
	if found, err = b.getSub(ctx, o.Key, o.VersionID, "legal-hold", &hold); err != nil {
		return err
	}
	o.LegalHold = found && hold.Status == string(minio.LegalHoldEnabled)
	return nil
}

// getSub GETs a sub-resource (?retention, ?legal-hold) of one version and
// decodes it into v. found is false when the object has no such
// configuration.
func (b *Bucket) getSub(ctx context.Context, key, versionID, sub string, v any) (found bool, err error) {
	q := url.Values{sub: {""}}
	if versionID != "" {
		q.Set("versionId", versionID)
	}
	u, err := b.client.Presign(ctx, http.MethodGet, b.name, key, time.Minute, q)
	if err != nil {
		return false, fmt.Errorf("recording: %s of %s: %w", sub, key, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("recording: %s of %s: %w", sub, key, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false, fmt.Errorf("recording: %s of %s: %w", sub, key, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}
		_ = xml.Unmarshal(body, &e)
		if e.Code == "NoSuchObjectLockConfiguration" {
			return false, nil
		}
		if e.Code == "NoSuchKey" || e.Code == "NoSuchVersion" {
			return false, fmt.Errorf("%w: %s (version %s)", ErrNotFound, key, versionID)
		}
		return false, fmt.Errorf("recording: %s of %s (version %s): %s %s: %s", sub, key, versionID, resp.Status, e.Code, e.Message)
	}
	if err := xml.Unmarshal(body, v); err != nil {
		return false, fmt.Errorf("recording: %s of %s: %w", sub, key, err)
	}
	return true, nil
}

// SetLegalHold puts (on) or releases (off) a legal hold on every version of
// every object under prefix, which must not be empty, and returns how many
// versions it changed.
func (b *Bucket) SetLegalHold(ctx context.Context, prefix string, on bool) (int, error) {
	if prefix == "" {
		return 0, errors.New("recording: legal hold needs a prefix (a whole bucket is never held or released at once)")
	}
	objs, err := b.versions(ctx, prefix)
	if err != nil {
		return 0, err
	}
	status := minio.LegalHoldDisabled
	if on {
		status = minio.LegalHoldEnabled
	}
	n := 0
	for _, o := range objs {
		if o.DeleteMarker {
			continue
		}
		if err := b.client.PutObjectLegalHold(ctx, b.name, o.Key, minio.PutObjectLegalHoldOptions{VersionID: o.VersionID, Status: &status}); err != nil {
			return n, fmt.Errorf("recording: legal hold %s on %s (version %s): %w", status, o.Key, o.VersionID, err)
		}
		n++
	}
	return n, nil
}

func contentType(key string) string {
	switch {
	case strings.HasSuffix(key, ".webm"):
		return "video/webm"
	case strings.HasSuffix(key, ".json"):
		return "application/json"
	case strings.HasSuffix(key, ".csv"):
		return "text/csv; charset=utf-8"
	}
	return "application/octet-stream"
}
