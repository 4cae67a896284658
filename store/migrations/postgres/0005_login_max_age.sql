-- 0005_login_max_age (Postgres): as SQLite's. A sign-in started to refresh an
-- old one (recordings need a recent sign-in) asks the IdP for max_age; the
-- callback checks auth_time against it.
ALTER TABLE login_states ADD COLUMN max_age_seconds BIGINT NOT NULL DEFAULT 0;
