"""Stand-in for Kaggle's `kaggle_secrets` module (present only inside Kaggle notebooks), for the
end-to-end test: UserSecretsClient().get_secret(label) answers from FAKE_KAGGLE_SECRETS (a JSON
object label -> value) and raises like Kaggle when the secret is not attached to the notebook."""

import json
import os


class UserSecretsClient:
    def get_secret(self, label):
        secrets = json.loads(os.environ.get("FAKE_KAGGLE_SECRETS", "{}"))
        if label not in secrets:
            raise ValueError(f"Secret {label} is not attached to this notebook.")
        return secrets[label]
