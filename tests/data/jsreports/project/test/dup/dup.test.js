'use strict';
const { describe, it } = require('node:test');
describe('suite', () => {
  it('same name', () => {});
  it('same name', () => { throw new Error('the second one fails'); });
});
