package sfu_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// loopbackCert is a certificate for 127.0.0.1 signed by a CA made for this
// test run. TestMain makes the CA the only root Go trusts in this process
// (SSL_CERT_FILE, read once at the first verification), so that pion's
// TURN-over-TLS client, which verifies against the system roots, checks
// the relay's certificate as it would a real one.
var loopbackCert tls.Certificate

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sfu-test-ca-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sfu tests: temp dir:", err)
		os.Exit(2)
	}
	caFile, err := makeTestCA(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sfu tests: test CA:", err)
		os.Exit(2)
	}
	_ = os.Setenv("SSL_CERT_FILE", caFile)
	_ = os.Setenv("SSL_CERT_DIR", dir)
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// makeTestCA writes a CA's certificate to dir/ca.pem, signs loopbackCert
// with it and returns the file's path.
func makeTestCA(dir string) (string, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chaperone sfu test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return "", err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", err
	}
	loopbackCert = tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
	path := filepath.Join(dir, "ca.pem")
	return path, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
}
