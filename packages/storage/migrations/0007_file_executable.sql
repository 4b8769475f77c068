-- The executable bit of a stored file (a skill's scripts), kept per version as git keeps a file's mode:
-- only "executable or not", never setuid, setgid or other permission bits.
ALTER TABLE file_versions ADD COLUMN is_executable boolean NOT NULL DEFAULT false;
