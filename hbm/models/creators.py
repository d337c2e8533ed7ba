# The creator model of the book's creator chapter, in PyMC, and each creator's effect
# drawn from its exact conditional posterior. One copy: the chapter shows this file,
# and its replication study and benchmark call the same functions.
import numpy as np
import pandas as pd
import pymc as pm

PARAMETERIZATIONS = (
    "noncentered",
    "centered_genre",
    "centered",
    "marginal",
    "marginal_noncentered",
)


def build_model(creators, parameterization="marginal", genre_prior_scale=1.0):
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}")
    genre = pd.Categorical(creators["genre"])
    coords = {
        "genre": [str(g) for g in genre.categories],
        "creator": creators["creator_id"].astype(str).tolist(),
    }
    with pm.Model(coords=coords) as model:
        # Data containers: a compiled model can be re-used on another data set of
        # this shape.
        effect = pm.Data("effect", creators["effect"].to_numpy(float), dims="creator")
        se = pm.Data("se", creators["se"].to_numpy(float), dims="creator")
        codes = np.asarray(genre.codes, "int64")
        genre_idx = pm.Data("genre_idx", codes, dims="creator")
        # Priors, on the scale of the effects (order one).
        mu_global = pm.Normal("mu_global", 0.0, 1.0)
        sigma_genre = pm.HalfNormal("sigma_genre", genre_prior_scale)
        sigma_creator = pm.HalfNormal("sigma_creator", 1.0)
        # Genre means: centered, except in the two non-centered versions.
        if parameterization in ("noncentered", "marginal_noncentered"):
            z_genre = pm.Normal("z_genre", 0.0, 1.0, dims="genre")
            mu_genre = pm.Deterministic(
                "mu_genre", mu_global + sigma_genre * z_genre, dims="genre"
            )
        else:
            mu_genre = pm.Normal("mu_genre", mu_global, sigma_genre, dims="genre")
        mu_i = mu_genre[genre_idx]
        if parameterization.startswith("marginal"):
            # Creators integrated out: y_i ~ N(mu_g, s_i^2 + sigma_creator^2).
            sd = pm.math.sqrt(se**2 + sigma_creator**2)
            pm.Normal("y", mu_i, sd, observed=effect, dims="creator")
            return model
        if parameterization == "centered":
            theta = pm.Normal("theta", mu_i, sigma_creator, dims="creator")
        else:
            z_creator = pm.Normal("z_creator", 0.0, 1.0, dims="creator")
            theta = pm.Deterministic(
                "theta", mu_i + sigma_creator * z_creator, dims="creator"
            )
        pm.Normal("y", theta, se, observed=effect, dims="creator")
    return model


def conditional_moments(y, se, mu, sigma):
    # theta_i given y_i, its genre mean mu and sigma_creator is
    # N(mu + (1 - B)(y - mu), (1 - B) s^2), with the shrinkage
    # B = s^2 / (s^2 + sigma^2).
    s2 = np.asarray(se, float) ** 2
    shrinkage = s2 / (s2 + np.asarray(sigma, float) ** 2)
    return mu + (1 - shrinkage) * (y - mu), np.sqrt((1 - shrinkage) * s2)


def add_creator_draws(fit, creators, rng):
    # One draw of every theta_i for each posterior draw of (mu_genre, sigma_creator):
    # together, draws from the joint posterior. Added to the posterior as "theta".
    post = fit["posterior"]
    codes = pd.Categorical(creators["genre"]).codes
    mu = post["mu_genre"].transpose("chain", "draw", "genre").values[..., codes]
    sigma = post["sigma_creator"].transpose("chain", "draw").values[..., None]
    y, se = creators["effect"].to_numpy(float), creators["se"].to_numpy(float)
    mean, sd = conditional_moments(y, se, mu, sigma)
    ids = creators["creator_id"].astype(str).to_numpy()
    post = post.to_dataset().assign_coords(creator=ids)
    theta = mean + sd * rng.standard_normal(mean.shape)
    post["theta"] = (("chain", "draw", "creator"), theta)
    attrs = dict(fit["posterior"].attrs)
    fit["posterior"] = post
    fit["posterior"].attrs.update(attrs)
    return fit
