# A `finalize_lost {json}` line logged by the functions before 1.0.0, made one that 1.0.0 replays
# (CHANGELOG.md, "Replaying a finalize_lost line logged before 1.0.0"). Lines in 1.0.0's shape pass
# through unchanged but for the former words. Use: jq -c -f scripts/finalize-lost-before-1.0.jq lost.jsonl
#
# The former flat shape: the outcome's fields beside reservation_id, `outcome` its kind, and the
# provider's midnight named for the Pacific day.
if (.outcome | type) == "object" then . else
  {reservation_id, outcome: (del(.reservation_id, .outcome, .cooldown_until_pacific_midnight)
    + {kind: .outcome, cooldown_until_provider_midnight: .cooldown_until_pacific_midnight})}
end
# The former words: the kind google_error, a cut by google.
| .outcome.kind |= (if . == "google_error" then "upstream_error" else . end)
| if .outcome.cut_by == "google" then .outcome.cut_by = "upstream" else . end
