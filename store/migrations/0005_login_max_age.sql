-- A sign-in started to refresh an old one (recordings need a recent sign-in)
-- asks the IdP for max_age; the callback checks auth_time against it.
ALTER TABLE login_states ADD COLUMN max_age_seconds INTEGER NOT NULL DEFAULT 0;
