"""Search methods of the restoration tasks (HiNAS, plain DARTS over HiNAS's space, trilevel)."""
