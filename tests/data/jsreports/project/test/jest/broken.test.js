
require('../../src/does-not-exist');
it('never defined', () => {});
