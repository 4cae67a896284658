// Package pgtest gives tests a fresh Postgres schema on the server that
// CHAPERONE_TEST_POSTGRES names (scripts/pg-test.sh starts one). It is apart
// from testkit, which imports store, so that store's own tests can use it.
package pgtest
