-- Priority classes: who goes first when requests wait (interactive before batch), and what part of a
-- model's window and day each class keeps for itself by default.
set check_function_bodies = off;

CREATE TABLE public.google_ai_priority_classes (
    name text NOT NULL PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,31}$'),
    rank smallint NOT NULL UNIQUE,
    description text,
    kept_rpm_percent numeric(5,2),
    kept_rpd_percent numeric(5,2),
    kept_changed_at timestamp with time zone,
    CONSTRAINT google_ai_priority_classes_kept_rpm_check CHECK (kept_rpm_percent > 0 AND kept_rpm_percent <= 100),
    CONSTRAINT google_ai_priority_classes_kept_rpd_check CHECK (kept_rpd_percent > 0 AND kept_rpd_percent <= 100)
);

COMMENT ON TABLE public.google_ai_priority_classes IS
    'Admission order between waiting requests: lower rank first. A credential allows its class and the lower ones.';

COMMENT ON COLUMN public.google_ai_priority_classes.kept_rpm_percent IS
    'Percent of every model''s RPM kept for this class, as a derived row of google_ai_quota_shares per model (rounded '
    'down, at least 1 request, below 100% never the whole limit). Null: none.';

COMMENT ON COLUMN public.google_ai_priority_classes.kept_rpd_percent IS
    'Percent of every model''s RPD kept for this class, as kept_rpm_percent. Null: none.';

COMMENT ON COLUMN public.google_ai_priority_classes.kept_changed_at IS
    'When a kept percent was last set or cleared; null: never (the seed writes its default percents only then).';
