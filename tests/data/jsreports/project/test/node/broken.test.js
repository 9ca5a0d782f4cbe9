'use strict';
require('../../src/does-not-exist');
