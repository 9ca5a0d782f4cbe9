'use strict';
const assert = require('node:assert');
const { add, divide } = require('../../src/calc');

describe('calc', function () {
  describe('add', function () {
    it('adds two numbers', function () { assert.equal(add(1, 2), 3); });
    it('is wrong on purpose', function () { assert.equal(add(1, 2), 4); });
  });
  describe('divide', function () {
    it('divides', function () { assert.equal(divide(6, 3), 2); });
    it('refuses zero', function () { assert.throws(() => divide(1, 0), /zero/); });
    it.skip('not ready', function () {});
    it('someday');
  });
});

describe('a suite whose hook fails', function () {
  before(function () { throw new Error('setup failed'); });
  it('never runs its body', function () {});
});

it('adds two numbers', function () { assert.equal(add(2, 2), 4); });
