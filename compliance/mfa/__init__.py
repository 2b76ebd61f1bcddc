"""Multi-factor authentication (HIPAA 164.312(d)): TOTP devices (django-otp) with
single-use recovery codes, required per role and enforced on every request."""
