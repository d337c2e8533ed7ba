# The three-level model of the music chapter: multinomial play counts per user,
# Dirichlet preferences per region, and a global profile above the regions. The users'
# preferences are integrated out (Dirichlet-multinomial likelihood), so the sampler sees
# only the upper levels.
import numpy as np
import pymc as pm
import pytensor.tensor as pt

GENRES = ["pop", "rock", "hiphop", "classical", "electronic"]
C_PRIOR = (3.0, 1.0)  # log c ~ Normal(3, 1): c between about 3 and 140, median 20
KAPPA_PRIOR = (3.0, 1.5)  # log kappa_r ~ Normal(3, 1.5): kappa_r about 1 to 380


def counts_matrix(plays, genres=GENRES):
    return plays[list(genres)].to_numpy(dtype=np.int64)


def region_codes(plays):
    # each user's region index, regions in order of first appearance in the file
    labels = plays["region"].astype(str)
    regions = list(dict.fromkeys(labels))
    return labels.map(regions.index).to_numpy(dtype=np.int64), regions


def regional_priors(n_genres, c_prior=C_PRIOR, kappa_prior=KAPPA_PRIOR):
    p_global = pm.Dirichlet("p_global", a=np.ones(n_genres), dims="genre")
    c = pm.LogNormal("c", mu=c_prior[0], sigma=c_prior[1])
    p = pm.Dirichlet("p", a=c * p_global, dims=("region", "genre"))
    log_kappa = pm.Normal(
        "log_kappa", mu=kappa_prior[0], sigma=kappa_prior[1], dims="region"
    )
    kappa = pm.Deterministic("kappa", pt.exp(log_kappa), dims="region")
    alpha = pm.Deterministic("alpha", kappa[:, None] * p, dims=("region", "genre"))
    return kappa, alpha


def three_level_model(plays, c_prior=C_PRIOR, kappa_prior=KAPPA_PRIOR):
    x = counts_matrix(plays)
    region_idx, regions = region_codes(plays)
    users = plays["user_id"].astype(str).tolist()
    coords = {"genre": GENRES, "region": regions, "user": users}
    with pm.Model(coords=coords) as model:
        kappa, alpha = regional_priors(len(GENRES), c_prior, kappa_prior)
        pm.DirichletMultinomial(
            "plays",
            n=x.sum(axis=1),
            a=alpha[region_idx],
            observed=x,
            dims=("user", "genre"),
        )
    return model
