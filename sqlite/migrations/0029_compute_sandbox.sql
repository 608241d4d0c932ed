-- Whether a Ray-backed cluster's steps run sandboxed on its nodes (the
-- default), or as the Ray worker's user (sandbox: false).
ALTER TABLE computes ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 1;
