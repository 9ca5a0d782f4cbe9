import { describe, it, expect } from 'vitest';
describe('calc', () => {
  it('déjà vu — ünïcode', () => { expect(1).toBe(1); });
});
