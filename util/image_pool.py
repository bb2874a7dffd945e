"""History of generated images (Shrivastava et al. 2017): D also sees older fakes, which damps oscillation."""
import random

import torch


class ImagePool:
    """Holds up to `pool_size` past fakes. Uses Python's `random`, as the reference does, so the
    training-state RNG snapshot covers it; the stored images go into the train state via state_dict()."""

    def __init__(self, pool_size):
        self.pool_size = pool_size
        self.images = []  # each (1, C, H, W), detached

    def query(self, images):
        """Return a batch the size of `images`: each item is the new fake, or (p=0.5 once the pool is
        full) a random stored fake that the new one replaces. Size 0 passes the batch through."""
        if self.pool_size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.pool_size - 1)
                out.append(self.images[i].clone().to(image.device))
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self):
        return {'pool_size': self.pool_size, 'images': [im.cpu() for im in self.images]}

    def load_state_dict(self, state):
        """Restore stored fakes (kept on CPU until swapped out; a smaller --pool_size keeps the first ones)."""
        self.images = list(state['images'])[:self.pool_size]
