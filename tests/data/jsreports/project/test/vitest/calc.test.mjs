import { describe, it, expect } from 'vitest';
import calc from '../../src/calc.js'; const { add, divide } = calc;

describe('calc', () => {
  describe('add', () => {
    it('adds two numbers', () => { expect(add(1, 2)).toBe(3); });
    it('is wrong on purpose', () => { expect(add(1, 2)).toBe(4); });
  });
  describe('divide', () => {
    it('divides', () => { expect(divide(6, 3)).toBe(2); });
    it('refuses zero', () => { expect(() => divide(1, 0)).toThrow(/zero/); });
    it.skip('not ready', () => {});
    it.todo('someday');
  });
});

it('adds two numbers', () => { expect(add(2, 2)).toBe(4); });
