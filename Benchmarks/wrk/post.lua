-- wrk script that sends POST instead of GET (make bench, /auth/verify when it
-- takes POST). Headers given with -H are kept.
wrk.method = "POST"
