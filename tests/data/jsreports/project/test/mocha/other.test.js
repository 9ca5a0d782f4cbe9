'use strict';
const assert = require('node:assert');
describe('calc add', function () {
  it('déjà vu — ünïcode', function () { assert.ok(true); });
});
