// Package roster reads class lists exported from the school's MIS (SIMS,
// Arbor, Bromcom): a OneRoster 1.2 CSV bundle (users.csv, classes.csv,
// enrollments.csv; School Data Sync v2.1 CSV has the same shape) or the
// classic Microsoft School Data Sync CSV (Section.csv, Student.csv,
// StudentEnrollment.csv). Parsing is strict (every required column, UTF-8,
// every reference resolved, a size limit) and pure; Compare shows what an
// import would change; Importer previews, applies and audits imports, from
// the IT-admin page, the command line or a watched directory. A class is
// offered as the roster group "class:<sourcedId>".
package roster
