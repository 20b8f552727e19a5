import { benchWorkdirGit } from './workdir-git.mjs';
const r = await benchWorkdirGit(3, 5000);
console.log(JSON.stringify(r, null, 1));
