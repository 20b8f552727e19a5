// fallocate(2) under maxDisk. FALLOC_FL_KEEP_SIZE allocates blocks past a
// file's end without changing its size, and RLIMIT_FSIZE, which bounds each
// file of the layer, is checked only when the size grows (inode_newsize_ok()
// in ext4_fallocate(), fs/ext4/extents.c): one call on a descriptor of the
// layer could fill the disk between two measures. With maxDisk it is
// refused with EOPNOTSUPP, which a file system without it answers and
// programs fall back from; the descriptor is not looked at (another thread
// may replace it after any check).
import { type Answer, answer } from '@sandlock/dispatch/module';
import { FALLOC_FL_KEEP_SIZE } from '@sandlock/sys';
import { type Ctx, sessionOf, uint } from '../call.js';

export function onAllocate(ctx: Ctx): Answer {
  if ((uint(ctx.args[1]) & FALLOC_FL_KEEP_SIZE) === 0) return answer.continue();
  if (sessionOf(ctx).workdir.layer.maxDisk === null) return answer.continue();
  ctx.refused({ what: 'fallocate(FALLOC_FL_KEEP_SIZE)', rule: 'maxDisk' });
  return answer.errno('EOPNOTSUPP');
}
