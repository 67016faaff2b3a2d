// Which keys the next reservation of a request leaves out. Keys that cannot work (the provider refused
// the key, its secret is missing) stay out for the whole request; keys that failed transiently (5xx,
// timeout, 429) are only avoided, and tried again when no other key is left.
export class KeyExclusions {
  private readonly broken: string[] = [];
  private avoided: string[] = [];

  list(): string[] {
    return [...this.broken, ...this.avoided];
  }

  markBroken(keyId: string): void {
    this.broken.push(keyId);
  }

  markAvoided(keyId: string): void {
    this.avoided.push(keyId);
  }

  /** No key was left: give the avoided ones another chance (false when there were none). */
  forgiveAvoided(): boolean {
    if (this.avoided.length === 0) return false;
    this.avoided = [];
    return true;
  }

  get anyBroken(): boolean {
    return this.broken.length > 0;
  }
}
