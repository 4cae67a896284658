// Package recording writes participants' media to WebM files in a local
// spool, uploads them to S3-compatible storage under Object Lock retention,
// places and releases legal holds, sweeps expired recordings and serves
// playback with Range support.
package recording
