import { describe, it, expect } from 'vitest';
import '../../src/does-not-exist.js';
it('never defined', () => {});
