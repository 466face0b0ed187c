-- The results database, beside Temporal's own on the same server.
CREATE USER tributary WITH PASSWORD 'tributary';
CREATE DATABASE tributary OWNER tributary;
